"""What every gateway request reads, held in memory and reloaded on change.

Providers, the model registry, rules, the active classifier and client
tokens are loaded once into an immutable snapshot. Workers poll the
ConfigRevision row at most every CONFIG_REFRESH_SECONDS, so the hot path
touches neither the database nor the cache for configuration.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.utils import timezone

from keys.models import ClientToken, hash_token
from keys.resolution import resolve_api_key
from providers.adapters.base import ProviderSettings
from providers.models import ModelEntry
from routing.models import ClassifierVersion, ConfigRevision, RoutingRule

logger = logging.getLogger("neuroroute.config")
T = TypeVar("T")


async def in_db_thread(func: Callable[..., T], *args: Any) -> T:
    """Run ORM work off the event loop, and hand its connection back after.

    Threads of the default executor outlive the call; without the close they
    would each hold a database connection (a pooled one on PostgreSQL) forever.
    """

    def run() -> T:
        try:
            return func(*args)
        finally:
            connections.close_all()

    return await sync_to_async(run, thread_sensitive=False)()
FAKE_UPSTREAM_KEY = "fake-upstream"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    key: str
    upstream_model: str
    provider: ProviderSettings
    provider_id: int
    capabilities: frozenset[str]
    context_window: int
    max_output_tokens: int
    input_price_per_token: float
    output_price_per_token: float
    tier: int
    fallbacks: tuple[str, ...]
    key_error: str = ""
    key_failing: bool = False  # the upstream rejected the provider's key (see Provider.key_failing_since)
    key_stored: bool = False  # the key comes from ProviderAPIKey (not the environment)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_price_per_token + completion_tokens * self.output_price_per_token

    def price_per_token(self) -> float:
        # Output usually dominates; weigh it like a typical 3:1 prompt:answer mix.
        return 0.75 * self.input_price_per_token + 0.25 * self.output_price_per_token


@dataclass(frozen=True, slots=True)
class RuleInfo:
    name: str
    target: str
    priority: int
    hint_only: bool
    phrases: tuple[tuple[str, ...], ...]  # each phrase as lower-case words
    pattern: re.Pattern | None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    id: int
    name: str
    is_admin: bool
    priority: str


@dataclass
class GatewayConfig:
    revision: int
    models: dict[str, ModelInfo]
    rules: tuple[RuleInfo, ...]
    classifier: object | None  # routing.classifier.IntentClassifier
    classifier_version: int | None
    by_upstream: dict[str, str] = field(default_factory=dict)  # upstream model name -> key
    rule_index: dict[str, list[tuple[tuple[str, ...], RuleInfo]]] = field(default_factory=dict)
    pattern_rules: tuple[RuleInfo, ...] = ()
    loaded_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.by_upstream = {m.upstream_model: m.key for m in self.models.values()}
        index: dict[str, list[tuple[tuple[str, ...], RuleInfo]]] = {}
        for rule in self.rules:
            for words in rule.phrases:
                index.setdefault(words[0], []).append((words, rule))
        self.rule_index = index
        self.pattern_rules = tuple(rule for rule in self.rules if rule.pattern is not None)

    def resolve_model(self, name: str) -> ModelInfo | None:
        """A registry key or an upstream model name."""
        model = self.models.get(name)
        if model is None and name in self.by_upstream:
            model = self.models[self.by_upstream[name]]
        return model


_WORD = re.compile(r"\w+")


def phrase_words(phrase: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(phrase.lower()))


def _provider_settings(entry: ModelEntry) -> tuple[ProviderSettings, str, bool]:
    provider = entry.provider
    fake_url = settings.NEUROROUTE["FAKE_UPSTREAM_URL"]
    resolved = resolve_api_key(provider)
    api_key, key_error = resolved.value, resolved.error
    base_url = provider.base_url
    if fake_url:
        base_url = fake_url.rstrip("/") + ("" if provider.kind == "anthropic" else "/v1")
        api_key = api_key or FAKE_UPSTREAM_KEY
        key_error = ""
    return (
        ProviderSettings(
            name=provider.name,
            kind=provider.kind,
            base_url=base_url,
            api_key=api_key,
            connect_timeout=provider.connect_timeout,
            read_timeout=provider.read_timeout,
        ),
        key_error,
        resolved.source == "stored" and bool(resolved.value),
    )


def load_config() -> GatewayConfig:
    from routing.classifier import IntentClassifier

    revision = ConfigRevision.current()
    models: dict[str, ModelInfo] = {}
    for entry in ModelEntry.objects.usable().select_related("provider"):
        provider_settings, key_error, key_stored = _provider_settings(entry)
        models[entry.key] = ModelInfo(
            key=entry.key,
            upstream_model=entry.upstream_model,
            provider=provider_settings,
            provider_id=entry.provider_id,
            capabilities=frozenset(entry.capabilities or ()),
            context_window=entry.context_window,
            max_output_tokens=entry.max_output_tokens,
            input_price_per_token=float(entry.input_price_per_mtok) / 1e6,
            output_price_per_token=float(entry.output_price_per_mtok) / 1e6,
            tier=entry.tier,
            fallbacks=tuple(entry.fallbacks or ()),
            key_error=key_error,
            key_failing=entry.provider.key_failing_since is not None,
            key_stored=key_stored,
        )
    rules = []
    for rule in RoutingRule.objects.enabled():
        pattern = None
        if rule.pattern:
            try:
                pattern = re.compile(rule.pattern, re.IGNORECASE)
            except re.error:
                logger.warning("skipping rule with invalid pattern", extra={"rule": rule.name})
                continue
        phrases = tuple(words for words in (phrase_words(p) for p in rule.phrases or ()) if words)
        rules.append(RuleInfo(rule.name, rule.target.key, rule.priority, rule.hint_only, phrases, pattern))
    classifier = None
    version = ClassifierVersion.objects.filter(is_active=True, status=ClassifierVersion.Status.READY).first()
    if version is not None and version.artefact:
        try:
            classifier = IntentClassifier.from_bytes(bytes(version.artefact))
        except ValueError:
            logger.exception("active classifier could not be loaded", extra={"version": version.pk})
    _seed_latency(models)
    return GatewayConfig(
        revision=revision,
        models=models,
        rules=tuple(rules),
        classifier=classifier,
        classifier_version=version.pk if classifier is not None else None,
    )


def _seed_latency(models: dict[str, ModelInfo]) -> None:
    """Start the `speed` priority from recent logs rather than from nothing."""
    from routing.latency import WINDOW, latency_stats
    from routing.models import RequestLog

    for key in models:
        if latency_stats.has_samples(key):
            continue
        recent = (
            RequestLog.objects.filter(model_key=key, status=RequestLog.Status.OK, cache_hit=False, stream=False)
            .order_by("-created_at")
            .values_list("latency_ms", flat=True)[:WINDOW]
        )
        latency_stats.seed(key, list(recent)[::-1])


class ConfigStore:
    """Per-process holder of the current GatewayConfig and the token cache."""

    TOKEN_TTL = 60.0

    def __init__(self) -> None:
        self._config: GatewayConfig | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None
        self._tokens: dict[str, tuple[ClientInfo | None, float]] = {}
        self._touched: dict[int, float] = {}
        self._lookups: dict[str, asyncio.Future[ClientInfo | None]] = {}

    def invalidate(self) -> None:
        self._config = None
        self._tokens.clear()

    # Synchronous access (management commands, admin, tests).
    def get_sync(self) -> GatewayConfig:
        with self._lock:
            if self._config is None or self._stale():
                self._refresh_sync()
            return self._config

    def _stale(self) -> bool:
        return time.monotonic() - self._checked_at >= settings.NEUROROUTE["CONFIG_REFRESH_SECONDS"]

    def _refresh_sync(self) -> None:
        self._checked_at = time.monotonic()
        if self._config is not None and ConfigRevision.current() == self._config.revision:
            return
        self._config = load_config()
        self._tokens.clear()

    async def get(self) -> GatewayConfig:
        config = self._config
        if config is not None and not self._stale():
            return config
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        async with self._async_lock:
            if self._config is None or self._stale():
                # One thread hop every few seconds, never per request.
                await in_db_thread(self._refresh_locked)
        return self._config

    def _refresh_locked(self) -> None:
        with self._lock:
            self._refresh_sync()

    async def client_for(self, raw_token: str) -> ClientInfo | None:
        digest = hash_token(raw_token)
        now = time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            client = cached[0]
        else:
            client = await self._lookup_once(digest)
            if len(self._tokens) > 10_000:  # bound memory against token-guessing floods
                self._tokens.clear()
            self._tokens[digest] = (client, now + (self.TOKEN_TTL if client else 5.0))
        if client is not None and now - self._touched.get(client.id, 0.0) > 60:
            self._touched[client.id] = now
            await in_db_thread(self._touch, client.id)
        return client

    async def _lookup_once(self, digest: str) -> ClientInfo | None:
        """One database lookup per token however many requests arrive at once."""
        pending = self._lookups.get(digest)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = asyncio.ensure_future(in_db_thread(self._lookup_token, digest))
            self._lookups[digest] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(pending)

    @staticmethod
    def _lookup_token(digest: str) -> ClientInfo | None:
        token = ClientToken.objects.active().filter(token_hash=digest).first()
        if token is None:
            return None
        return ClientInfo(token.pk, token.name, token.is_admin, token.priority)

    @staticmethod
    def _touch(token_id: int) -> None:
        ClientToken.objects.filter(pk=token_id).update(last_used_at=timezone.now())


config_store = ConfigStore()
