"""The model page of a project (`GET /projects/<id>/page`): server-rendered HTML with inline SVG,
nothing loaded from elsewhere, no inline script: its behaviour (and the metrics page's) is one file,
static/page.js, served by routes.py at /static/page.js. One module per section (page.py lists them);
routes.py holds the page's routes and data endpoints."""
