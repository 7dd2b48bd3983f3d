# veil's command line in a slim, headless container (no display libraries: veil uses
# opencv-python-headless, and the models ship inside the veil package, so nothing is
# downloaded at run time).
#
#   docker build -t veil .                                  # the CLI
#   docker build -t veil --build-arg EXTRAS=identify .      # plus --spare/--only (dlib)
#   docker run --rm -v "$PWD:/data" veil anonymize photo.jpg clip.mp4 -o anonymized/
#
# For the web app (`veil serve`), build with the extra that brings its server
# (e.g. --build-arg EXTRAS=serve) and publish its port: docker run -p 8000:8000 veil serve ...
# (it must listen on 0.0.0.0 inside the container to be reachable from the host).
#
# Licences: the image contains PyAV's FFmpeg, built with GPL components (x264, x265);
# redistributing the image means meeting the GPL for them (README, "Licences").

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY veil ./veil
ARG EXTRAS=""
RUN pip install --no-cache-dir --prefix=/install ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 1000 veil && mkdir /data && chown veil /data
USER veil
WORKDIR /data
# a smoke test at build time: the models are present and verified, cv2 imports without libGL
RUN veil info
EXPOSE 8000
ENTRYPOINT ["veil"]
CMD ["--help"]
