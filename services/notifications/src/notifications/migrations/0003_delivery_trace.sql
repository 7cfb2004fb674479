-- W3C trace context of the consumer span that queued the e-mail, so its SMTP send joins the
-- trace that started at the member's click (the sender loop runs outside that span).
ALTER TABLE deliveries ADD COLUMN trace_headers jsonb;
