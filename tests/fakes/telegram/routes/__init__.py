"""The Bot API methods the fake answers, by area. Each is a function of the fake's ``World``
and the request's ``Params`` returning the ``result`` (or raising ``ApiError``); the routing
table is in ``server.py``."""
