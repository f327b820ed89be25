"""The model page of a project (`GET /projects/<id>/page`): server-rendered HTML with inline SVG
and a little inline JavaScript, nothing loaded from elsewhere. One module per section (page.py
lists them); routes.py holds the page's routes and data endpoints."""
