"""The CSRF extension (Flask-WTF), created unbound; ``app.py`` initialises it.

Every form posted to the browser pages needs its token; the bearer-token API blueprint is
exempt (``routes/api.py``) because it authenticates with tokens, never cookies.
"""

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
