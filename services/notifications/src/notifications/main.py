"""notifications: wiring. `uvicorn notifications.main:app`"""

import asyncio
from importlib.resources import files

from notifications.adapters.smtp import SmtpSender
from notifications.adapters.templates import Templates
from notifications.config import NotificationsSettings
from notifications.entrypoints import http
from notifications.entrypoints.consumers import build_consumer
from notifications.service_layer.emails import Notifications, insert_queued, room_to_queue, sender_loop
from shared.platform.app import ServiceRuntime
from shared.platform.metrics import EMAILS_FAILED, EMAILS_RETRIED, EMAILS_SENT


def create_app():
    settings = NotificationsSettings()
    runtime = ServiceRuntime(settings, migrations=files("notifications") / "migrations")
    notifications = Notifications(settings=settings, db=runtime.db, templates=Templates(), smtp=SmtpSender(settings))
    runtime.consume(build_consumer(notifications), before_commit=lambda session: insert_queued(notifications, session), after_commit=notifications.wake_sender.set,
                    before_batch=lambda: room_to_queue(notifications))
    # Every kind's e-mail series exist (at 0) before the first send, failure or retry.
    for template in (files("notifications") / "templates").iterdir():
        if template.name.endswith(".subject.txt"):
            kind = template.name.removesuffix(".subject.txt")
            for counter in (EMAILS_SENT, EMAILS_FAILED, EMAILS_RETRIED):
                counter.labels(kind)
    sender: list[asyncio.Task] = []

    @runtime.on_startup
    async def _start_sender() -> None:
        sender.append(asyncio.create_task(sender_loop(notifications), name="email-sender"))

    @runtime.on_shutdown
    async def _stop_sender() -> None:
        for task in sender:
            task.cancel()
        await asyncio.gather(*sender, return_exceptions=True)
        notifications.smtp.close()

    app = runtime.create_app(
        title="Espace — notifications",
        description="E-mails to members (French templates) and their delivery receipts.",
        routers=[http.router],
    )
    app.state.notifications = notifications
    return app


app = create_app()
