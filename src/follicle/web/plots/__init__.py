"""Server-made SVG plots of the web app (interaction in static/plots.js)."""
