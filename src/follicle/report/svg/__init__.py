"""SVG plots drawn from aggregate numbers, shared by the study report and the web app."""
