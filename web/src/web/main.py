"""web: wiring. `uvicorn web.main:app --host 127.0.0.1 --port 8005`"""

from web.app import create_app

app = create_app()
