"""The vramplan HTTP service: FastAPI app, settings, schemas, routes, metrics and the web page.

Needs the ``web`` extra (``pip install 'vramplan[web]'``). Build an app with
:func:`vramplan.service.app.create_app`; run one with ``vramplan serve``.
"""
