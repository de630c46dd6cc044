"""Celery tasks: thin, take ids or flags, call a service."""

from __future__ import annotations

from celery import shared_task

from routing import services


@shared_task(time_limit=15 * 60, soft_time_limit=10 * 60)
def train_classifier(activate: bool = False) -> int:
    return services.classifier_train(activate=activate).pk
