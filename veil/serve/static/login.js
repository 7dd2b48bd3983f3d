if (location.search.includes("wrong=1")) document.getElementById("wrong").hidden = false;
