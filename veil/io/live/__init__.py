"""Live input and output: cameras, network streams and pipes, with bounded latency.

Three modules: :mod:`~veil.io.live.endpoints` (what the user named), :mod:`~veil.io.live.reader`
(the source, on its own thread), :mod:`~veil.io.live.run` (the calling thread: ``process`` and
the shared :class:`~veil.io.encoder.VideoEncoder`, whose own thread encodes and muxes).

Sources: ``-`` (stdin), a named pipe (FIFO), a camera (``/dev/video0`` or ``v4l2:/dev/video0``;
``avfoundation:0`` / ``dshow:video=NAME`` where FFmpeg has them), network URLs (``rtsp://``,
``rtmp://``, ``udp://``, ``tcp://``, ``srt://``, ``http(s)://`` incl. HLS ``.m3u8``), and for
testing a regular file. Sinks: a file (``.mp4 .mov .mkv .webm .ts .flv``), ``-`` (stdout,
MPEG-TS, for chaining into ffmpeg/ffplay) or a network URL (``udp://`` / ``tcp://`` /
``srt://`` MPEG-TS, ``rtsp://`` pushed to a server, ``rtmp://`` FLV). The frames go through
the same ``process`` generator as :func:`veil.io.video.transcode_video`: RGB uint8 in, exactly
one frame of the same shape out per frame in, in order; it may buffer.

How it works, and why:

* **Three threads, bounded queues.** A reader thread demuxes and decodes the source; the
  calling thread takes frames from the queue, feeds ``process`` and hands what it yields to
  the encoder's thread (:class:`~veil.io.encoder.VideoEncoder`, the one files use; a queue of
  2 frames for network and pipe outputs, 8 for files), which encodes and muxes.
  Errors in the reader travel through the queue (behind the frames already queued) and are
  raised in the calling thread; nothing is swallowed and nothing waits forever (end-of-stream
  sentinels, polling with timeouts, a watchdog for a reader stuck in a blocking call).
* **Latency/drop policy (live sources).** A frame's age is counted from the moment it was
  decoded. ``max_latency_s`` is a budget, not a target: frames go to ``process`` oldest
  first, so a short hiccup (a slow batch, a GC pause) is absorbed and nothing is lost; a
  frame that has waited longer than the budget when its turn comes is dropped, and so is the
  oldest frame when the queue (sized to hold about ``max_latency_s`` of video) is full. When
  processing is slower than the source, veil therefore keeps the newest frames it can still
  deliver within the budget, the delay stays at most about ``max_latency_s`` plus the time
  ``process`` takes (plus whatever ``process`` itself buffers: use ``batch=1`` for the
  lowest delay), and the output simply has fewer frames (their timestamps keep the real
  gaps). Sources that deliver in bursts (HLS segments, the backlog sent on connecting)
  may lose the oldest frames of a burst; a ``max_latency_s`` of a segment's length avoids
  that. Drops happen *before* ``process``: a dropped frame is never written, never
  written raw, and no frame reaches the output without going through ``process``. Frames the
  decoder flags as damaged (lost packets) are dropped too: concealment smears faces that a
  detector may then miss. Counts are in :class:`StreamStats`.
* **Not live** (stdin redirected from a regular file, a regular file, or
  ``StreamOptions(live=False)``): the reader waits for room in the queue instead (the source
  is read only as fast as it is processed); nothing is dropped for latency. A pipe is taken
  to be live (``ffmpeg -f v4l2 ... | veil``); ``cat clip.mp4 | veil`` arrives faster than
  real time, so most frames would be dropped: pass ``live=False`` there (a warning says so).
* **Timestamps** are monotonic: the gap between two written frames is the gap between their
  source timestamps when that is sane (positive, under 10 s, no reconnection in between),
  else the wall-clock gap between their arrivals (live) or one nominal frame (not live).
  Output starts at 0. Audio is not passed through: a live stream is video only (the voice
  in it would be as identifying as the face).
* **Resolution change mid-stream:** every frame is scaled to fit the first frame's size,
  keeping its aspect ratio, centred on black bars (letterbox), *before* ``process``. So
  ``process`` always sees one shape (trackers keep working), the encoder never restarts (an
  mp4 cannot change size mid-file) and the output has one size. A warning is logged once per
  new size; ``StreamStats.resized`` counts such frames.
* **Rotation:** a source can carry a display matrix (a tagged file, Matroska or fragmented
  MP4 through a pipe, an H.264 display-orientation SEI) or a legacy ``rotate`` tag, as
  files do. Every frame is turned into display orientation before ``process`` and written
  upright, exactly as :func:`~veil.io.video.transcode_video` does (see its module
  docstring for why); a frame whose orientation changes the shape mid-stream is
  letterboxed like a resolution change.
* **Network sources** are assumed live: the end of the data, a read error or no video frame
  for ``stall_timeout_s`` means the connection was lost; veil reconnects up to
  ``reconnect`` times, waiting 0.5, 1, 2, 4, 8, 8... s, and the count starts again once
  frames flow again. Giving up raises :class:`~veil.errors.InputError`. The *first*
  connection is not retried: a wrong URL or a server that is not up fails at once, clearly.
  A pipe or camera that stalls for ``stall_timeout_s`` raises at once (it cannot be
  reopened); a pipe that ends is the normal end of the stream.
* **Input that is not video** (garbage) fails with :class:`~veil.errors.CorruptMediaError`;
  no video stream, an unknown protocol or device type with
  :class:`~veil.errors.UnsupportedMediaError`; all messages are one line, and URLs are shown
  without their user name and password.
* **What is kept when a live run ends early.** A live stream has no natural end, so a run
  usually ends with ``stop`` or Ctrl-C; the frames written so far are then the result the
  user wants. Unlike :func:`~veil.io.video.transcode_video` (all or nothing), a *file*
  output is therefore finalized (encoder flushed, container trailer written, temporary file
  renamed over ``dst``) when the run ends by ``stop`` (``anonymize_stream`` returns),
  by ``KeyboardInterrupt`` (the frames already queued for the encoder are encoded, then
  the file is finalized and the interruption re-raised; encoding and muxing run on the
  encoder's thread, which signals never interrupt, so no frame already encoded goes missing;
  a second Ctrl-C drops the queued frames) or by an error after frames were
  written (finalized, then the error is raised; its message says how many frames were kept
  where). Every frame in it went through ``process``. Nothing is kept when no frame was
  written or when the output itself failed (:class:`~veil.errors.OutputError`): the
  temporary file is deleted. SIGTERM is a ``KeyboardInterrupt`` too where the program asked
  for it (:func:`veil.io.interrupts.terminate_as_interrupt`; the ``veil`` CLI does), and it
  is held like Ctrl-C. A hard kill (SIGKILL, power loss) leaves only the hidden ``.part``
  temporary file; the next run that writes into that folder removes it (see
  :mod:`veil.io.atomic`). Raised exceptions carry the run's :class:`StreamStats` as
  ``exc.stream_stats`` and what was left at ``dst`` as a clause for a message,
  ``exc.outcome`` ("the 57 frame(s) anonymized before it were kept in rec.mp4", "nothing
  was written to rec.mp4"). On ``stop`` ``process`` is allowed to finish the frames it
  holds; on Ctrl-C or an error inside ``process`` those are lost (never written raw).

Stdout and network outputs are written as frames come (``tune=zerolatency`` for x264/x265,
a keyframe every 2 s so that viewers can join). A ``tcp://`` output gets a ``timeout`` of
``stall_timeout_s`` (unless the URL sets one) so that a receiver that stops reading raises
an OutputError instead of blocking forever.
"""

from .endpoints import StreamOptions, is_stream, redact_url
from .run import StreamStats, anonymize_stream

__all__ = ["StreamOptions", "StreamStats", "anonymize_stream", "is_stream", "redact_url"]
