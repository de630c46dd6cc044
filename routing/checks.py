"""Start-up checks: catch routing misconfiguration before the first request."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from routing.strategies import STRATEGIES


@register()
def check_pipeline(app_configs, **kwargs) -> list[Error]:
    errors = []
    pipeline = settings.NEUROROUTE["PIPELINE"]
    unknown = [name for name in pipeline if name not in STRATEGIES]
    if unknown:
        errors.append(
            Error(
                f"NEUROROUTE_PIPELINE names unknown strategies: {', '.join(unknown)}",
                hint=f"Known strategies: {', '.join(STRATEGIES)}",
                id="routing.E001",
            )
        )
    if "priority" not in pipeline:
        errors.append(Error("NEUROROUTE_PIPELINE must end with 'priority', which makes the final choice", id="routing.E002"))
    if not 0.0 <= settings.NEUROROUTE["CONFIDENCE_THRESHOLD"] <= 1.0:
        errors.append(Error("NEUROROUTE_CONFIDENCE_THRESHOLD must be between 0 and 1", id="routing.E003"))
    return errors
