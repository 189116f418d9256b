"""Log levels a platform team can alert on: ERROR means the operator is at fault, never the user.

kopf logs every AdmissionError a webhook handler raises as "Webhook '<id>' failed permanently: <reason>"
at ERROR, the level of an operator fault. Such a refusal (a typo in a service name, a quota, the garbage
collector retrying a delete the webhook holds back, R7) is the webhook doing its job: this filter re-levels
those records to INFO and says what they are, with the reason. Everything else keeps its level (a handler
that crashes is logged by kopf as "failed with an exception", untouched).
"""

from __future__ import annotations

import logging

WEBHOOK_REFUSAL = " failed permanently: "


class AdmissionRefusalsAtInfo(logging.Filter):
    """Turns kopf's ERROR record of a webhook's refusal into an INFO record "admission refused by ..."."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR:
            message = record.getMessage()
            handler, found, reason = message.partition(WEBHOOK_REFUSAL)
            if found and handler.startswith("Webhook "):
                record.msg = "admission refused by %s: %s"
                record.args = (handler.removeprefix("Webhook "), reason)
                record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


def install() -> None:
    """Attach the filter where kopf logs handler outcomes (per-object records go through "kopf.objects")."""
    logging.getLogger("kopf.objects").addFilter(AdmissionRefusalsAtInfo())
