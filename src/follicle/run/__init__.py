"""run: the end-to-end comparative study pipeline (cohorts -> PS -> matching -> outcomes -> report)."""
