"""Admin for routing: operator rules, classifier training data and versions, and the request log."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from keys.models import ClientToken
from providers.models import ModelEntry
from routing import services
from routing.decision import Decision, RouteRequest, RoutingError
from routing.gateway_config import GatewayConfig, config_store
from routing.history import recent_endpoints
from routing.models import (
    ClassifierVersion,
    ConfigRevision,
    RequestLog,
    RoutingExample,
    RoutingRule,
)
from routing.router import route
from routing.tasks import train_classifier


def pretty_json_block(value: Any) -> str:
    """Indented, escaped JSON for read-only admin fields."""
    if value in (None, "", [], {}):
        return "—"
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def text_block(value: str) -> str:
    """Long user text (prompts, responses) kept readable and always escaped."""
    if not value:
        return "—"
    return format_html(
        '<pre style="white-space: pre-wrap; word-break: break-word; max-height: 30em; '
        'overflow: auto; margin: 0">{}</pre>',
        value,
    )


# ---- Try a prompt --------------------------------------------------------------


class TryPromptForm(forms.Form):
    """One prompt through the real router, exactly as the gateway would route it (no LLM call)."""

    prompt = forms.CharField(
        strip=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "class": "vLargeTextField"})
    )
    priority = forms.ChoiceField(
        choices=ClientToken.Priority.choices,
        required=False,
        help_text="What the client asks to favour among models that score about as well.",
    )
    model = forms.CharField(
        label="Forced model",
        required=False,
        max_length=120,
        help_text="A model key or upstream model name, as a client would send it; blank routes.",
        widget=forms.TextInput(attrs={"list": "try-prompt-models"}),
    )

    def route(self, config: GatewayConfig) -> Decision:
        """Raises RoutingError when the gateway would refuse the request."""
        prompt = self.cleaned_data["prompt"]
        request = RouteRequest(
            messages=[{"role": "user", "content": prompt}],
            prompt_text=prompt,
            requested_model=self.cleaned_data["model"].strip() or None,
            priority=self.cleaned_data["priority"] or None,
        )
        return route(request, config)


def try_prompt_context(request: HttpRequest) -> dict[str, Any]:
    """What the changelists need to show the compact try-a-prompt form."""
    return {
        "try_prompt_form": TryPromptForm(),
        "try_prompt_url": reverse("admin:routing_routingrule_try"),
        "model_keys": sorted(config_store.get_sync().models),
    }


# ---- Routing rules -------------------------------------------------------------


class PhraseListField(forms.CharField):
    """A JSON list of phrases, edited one per line."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return "\n".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        phrases: list[str] = []
        for line in super().to_python(value).splitlines():
            phrase = line.strip()
            if phrase and phrase not in phrases:
                phrases.append(phrase)
        return phrases


class RoutingRuleForm(forms.ModelForm):
    phrases = PhraseListField(
        required=False,
        help_text="One phrase per line, matched case-insensitively on word boundaries.",
    )

    class Meta:
        model = RoutingRule
        fields = "__all__"


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ("name", "phrase_list", "pattern", "target", "priority", "enabled", "hint_only")
    list_display_links = ("name",)
    list_editable = ("priority", "enabled", "hint_only")
    list_select_related = ("target",)
    list_filter = ("enabled", "hint_only", "target")
    search_fields = ("name", "phrases", "notes")
    ordering = ("-priority", "name")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "target", "priority", "enabled", "hint_only")}),
        ("Match", {"fields": ("phrases", "pattern")}),
        (None, {"fields": ("notes", "created_at", "updated_at")}),
    )
    actions = ("enable", "disable")

    def get_urls(self) -> list[URLPattern]:
        urls = [
            path(
                "try/",
                self.admin_site.admin_view(self.try_prompt_view),
                name="routing_routingrule_try",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {**try_prompt_context(request), **(extra_context or {})})

    def try_prompt_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        config = config_store.get_sync()
        explanation = None
        form = TryPromptForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                explanation = form.route(config).explain()
            except RoutingError as exc:
                self.message_user(request, f"Not routable: {exc.message}", level=messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Try a prompt",
            "form": form,
            "model_keys": sorted(config.models),
            "explanation": explanation,
            "explanation_json": json.dumps(explanation, indent=2, ensure_ascii=False, default=str)
            if explanation
            else "",
        }
        return TemplateResponse(request, "admin/routing/try_prompt.html", context)

    @admin.display(description="phrases")
    def phrase_list(self, obj: RoutingRule) -> str:
        return ", ".join(obj.phrases) or "—"

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[RoutingRule], enabled: bool
    ) -> None:
        count = queryset.update(enabled=enabled)
        # update() sends no post_save, so tell the workers to reload ourselves.
        ConfigRevision.bump()
        self.message_user(request, f"{count} rule(s) {'enabled' if enabled else 'disabled'}.")

    @admin.action(description="Enable selected rules")
    def enable(self, request: HttpRequest, queryset: QuerySet[RoutingRule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected rules")
    def disable(self, request: HttpRequest, queryset: QuerySet[RoutingRule]) -> None:
        self._set_enabled(request, queryset, False)


# ---- Classifier ----------------------------------------------------------------


class ImportExamplesForm(forms.Form):
    file = forms.FileField(
        label="JSONL file",
        help_text='One example per line: {"text", "intent"}, or the evaluation format '
        '{"prompt", "routes", "source"} (labelled with its first route).',
    )
    source = forms.CharField(
        required=False,
        max_length=60,
        help_text='Recorded on every imported example; blank keeps each line\'s "source", else "import".',
    )


@admin.register(RoutingExample)
class RoutingExampleAdmin(admin.ModelAdmin):
    list_display = ("short_text", "intent", "source", "created_at")
    list_filter = ("intent", "source")
    search_fields = ("text", "intent")

    def get_urls(self) -> list[URLPattern]:
        urls = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="routing_routingexample_import",
            ),
            path(
                "load-defaults/",
                self.admin_site.admin_view(require_POST(self.load_defaults_view)),
                name="routing_routingexample_load_defaults",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # One GROUP BY over a table of thousands of rows at most; order_by
        # replaces Meta.ordering, which would otherwise split the groups.
        intent_counts = list(
            RoutingExample.objects.values("intent").annotate(count=Count("id")).order_by("intent")
        )
        context = {
            **try_prompt_context(request),
            "intent_counts": intent_counts,
            "examples_total": sum(row["count"] for row in intent_counts),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportExamplesForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                count = self._import_upload(form.cleaned_data["file"], form.cleaned_data["source"])
            except ValueError as exc:
                form.add_error("file", f"Nothing imported: {exc}")
            else:
                if count:
                    self.message_user(
                        request, f"Imported {count} example(s). Train a new classifier version to use them."
                    )
                else:
                    self.message_user(request, "The file holds no examples.", level=messages.WARNING)
                return HttpResponseRedirect(reverse("admin:routing_routingexample_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import examples",
            "form": form,
        }
        return TemplateResponse(request, "admin/routing/routingexample/import.html", context)

    @staticmethod
    def _import_upload(upload: Any, source: str) -> int:
        # examples_import reads a path; uploads may live only in memory.
        with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        try:
            with transaction.atomic():  # a bad line anywhere leaves nothing half-imported
                count = services.examples_import(path=handle.name, source=source)
        finally:
            os.unlink(handle.name)
        return count

    def load_defaults_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        count = services.examples_load_defaults()
        if count:
            self.message_user(request, f"Loaded {count} default example(s).")
        else:
            self.message_user(request, "The default example set is already loaded.", level=messages.WARNING)
        return HttpResponseRedirect(reverse("admin:routing_routingexample_changelist"))

    @admin.display(description="text", ordering="text")
    def short_text(self, obj: RoutingExample) -> str:
        return Truncator(obj.text).chars(90)


@admin.register(ClassifierVersion)
class ClassifierVersionAdmin(admin.ModelAdmin):
    """Versions are produced by training, never edited; operators only choose which is live."""

    list_display = ("id", "created_at", "status", "active", "examples_count", "accuracy")
    list_filter = ("status", "is_active")
    fields = (
        "created_at",
        "status",
        "is_active",
        "examples_count",
        "cv_accuracy",
        "labels",
        "report_pretty",
        "error",
    )
    readonly_fields = fields
    actions = ("activate",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ClassifierVersion]:
        # The pickled model can be megabytes; no admin page needs it.
        return super().get_queryset(request).defer("artefact")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: ClassifierVersion | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: ClassifierVersion | None = None
    ) -> bool:
        return False

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("routing.change_classifierversion")

    def has_train_permission(self, request: HttpRequest) -> bool:
        # Training only offers a version; choosing it stays with activate.
        return self.has_activate_permission(request)

    def get_urls(self) -> list[URLPattern]:
        urls = [
            path(
                "train/",
                self.admin_site.admin_view(require_POST(self.train_view)),
                name="routing_classifierversion_train",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"has_train_permission": self.has_train_permission(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def train_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_train_permission(request):
            raise PermissionDenied
        # robust: a broker outage (or, run eagerly, a failed training, which
        # leaves a "failed" version with its error) must not turn this into a 500.
        transaction.on_commit(lambda: train_classifier.delay(activate=False), robust=True)
        self.message_user(
            request,
            "Training a new classifier version. It appears here, inactive, when ready: "
            "check its accuracy, then activate it.",
        )
        return HttpResponseRedirect(reverse("admin:routing_classifierversion_changelist"))

    @admin.display(description="active", boolean=True, ordering="is_active")
    def active(self, obj: ClassifierVersion) -> bool:
        return obj.is_active

    @admin.display(description="cross-validated accuracy", ordering="cv_accuracy")
    def accuracy(self, obj: ClassifierVersion) -> str:
        return "—" if obj.cv_accuracy is None else f"{obj.cv_accuracy:.1%}"

    @admin.display(description="report")
    def report_pretty(self, obj: ClassifierVersion) -> str:
        return pretty_json_block(obj.report)

    @admin.action(description="Activate the selected version", permissions=["activate"])
    def activate(self, request: HttpRequest, queryset: QuerySet[ClassifierVersion]) -> None:
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, "Select exactly one version to activate.", level="error")
            return
        version = versions[0]
        if version.status != ClassifierVersion.Status.READY:
            self.message_user(
                request, f"{version} is not ready; only trained versions can serve.", level="error"
            )
            return
        version.activate()
        self.message_user(request, f"{version} is now active.")


# ---- Request log ---------------------------------------------------------------


class CappedCountPaginator(Paginator):
    """Counts at most `cap` rows, via COUNT over a LIMITed subquery.

    A full COUNT(*) over the request log gets slower with every request ever
    served. Past the cap the admin simply offers `cap` rows' worth of pages;
    narrowing by date or model reaches the rest. It's OK for the count shown
    to be a floor on big tables.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap].count()


class RegistryModelFilter(admin.SimpleListFilter):
    """Models from the registry: a handful of rows, not a DISTINCT over the log."""

    title = "model"
    parameter_name = "model_key"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, key) for key in ModelEntry.objects.values_list("key", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(model_key=self.value()) if self.value() else queryset


class EndpointFilter(admin.SimpleListFilter):
    title = "endpoint"
    parameter_name = "endpoint"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # Sampled from recent rows (see recent_endpoints); Django's default
        # filter for a CharField would run SELECT DISTINCT over the whole log.
        endpoints = recent_endpoints()
        if self.value() and self.value() not in endpoints:
            endpoints.append(self.value())
        return [(endpoint, endpoint) for endpoint in endpoints]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(endpoint=self.value()) if self.value() else queryset


# Columns the changelist never shows; prompts alone may be hundreds of kilobytes.
HEAVY_LOG_COLUMNS = ("prompt", "response", "decision", "attempts", "metadata", "error")


class RequestLogChangeList(ChangeList):
    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        return super().get_queryset(request, exclude_parameters).defer(*HEAVY_LOG_COLUMNS)


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    """Strictly read-only: the log is evidence, written only by the gateway."""

    list_display = (
        "created_at",
        "endpoint",
        "client",
        "model_key",
        "status",
        "http_status",
        "latency_ms",
        "ttft_ms",
        "tokens",
        "cost_usd",
        "cache_hit",
        "stream",
    )
    list_display_links = ("created_at",)
    list_select_related = ("client",)
    # created_at as a list filter (fixed ranges, no query); date_hierarchy
    # would run SELECT DISTINCT dates over the whole table on every page.
    list_filter = (
        RegistryModelFilter,
        "status",
        "created_at",
        "cache_hit",
        "stream",
        EndpointFilter,
    )
    search_fields = ("=user_id", "prompt")
    search_help_text = "A request id, an exact user id, or text in the prompt."
    ordering = ("-created_at",)
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False
    # Facet counts are one COUNT per filter option over the matching rows.
    show_facets = admin.ShowFacets.NEVER
    fieldsets = (
        (
            "Request",
            {
                "fields": (
                    "request_id",
                    "history_link",
                    "created_at",
                    "endpoint",
                    "stream",
                    "client",
                    "user_id",
                    "metadata_pretty",
                )
            },
        ),
        (
            "Routing",
            {
                "fields": (
                    "model_key",
                    "upstream_model",
                    "provider",
                    "route_reason",
                    "route_rule",
                    "decision_pretty",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "status",
                    "http_status",
                    "error",
                    "cache_hit",
                    "latency_ms",
                    "ttft_ms",
                    "prompt_tokens",
                    "completion_tokens",
                    "cost_usd",
                    "attempts_pretty",
                )
            },
        ),
        ("Content", {"fields": ("prompt_block", "response_block")}),
    )
    readonly_fields = (
        "history_link",
        "metadata_pretty",
        "decision_pretty",
        "attempts_pretty",
        "prompt_block",
        "response_block",
    )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RequestLogChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RequestLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RequestLog | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[RequestLog], search_term: str
    ) -> tuple[QuerySet[RequestLog], bool]:
        # A pasted request id is an exact lookup on a unique column; searching
        # prompts for it too would scan the table for nothing.
        try:
            request_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(request_id=request_id), False

    @admin.display(description="tokens")
    def tokens(self, obj: RequestLog) -> int:
        return obj.total_tokens

    @admin.display(description="history page")
    def history_link(self, obj: RequestLog) -> str:
        try:
            url = reverse("history-detail", args=[obj.request_id])
        except NoReverseMatch:
            return "—"  # history pages not mounted on this site
        return format_html('<a href="{}">Open in request history</a>', url)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: RequestLog) -> str:
        return pretty_json_block(obj.metadata)

    @admin.display(description="decision")
    def decision_pretty(self, obj: RequestLog) -> str:
        return pretty_json_block(obj.decision)

    @admin.display(description="attempts")
    def attempts_pretty(self, obj: RequestLog) -> str:
        return pretty_json_block(obj.attempts)

    @admin.display(description="prompt")
    def prompt_block(self, obj: RequestLog) -> str:
        return text_block(obj.prompt)

    @admin.display(description="response")
    def response_block(self, obj: RequestLog) -> str:
        return text_block(obj.response)
