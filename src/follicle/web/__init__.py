"""The browser app: server-rendered pages (Jinja + HTMX, every asset served locally) over the library.

``follicle web --db DB`` serves it; :func:`follicle.web.app.create_app` builds it. Routers are thin:
they parse a request, call library functions and render a template.
"""
