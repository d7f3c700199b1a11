// Loads the greeting from the backend API version in config.json.
fetch("config.json")
  .then((r) => r.json())
  .then((config) => fetch(`${config.backend}/api/greeting`))
  .then((r) => r.json())
  .then((body) => {
    document.getElementById("greeting").textContent = body.message;
  });
