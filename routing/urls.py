from django.urls import include, path

from routing import anthropic_compat, api, openai_compat

urlpatterns = [
    path("prompt", api.prompt_view, name="prompt"),
    path("route", api.route_view, name="route"),
    path("history/", include("routing.history_urls")),
    # Drop-in compatibility: OpenAI and Anthropic SDKs need only a new base URL.
    path("v1/chat/completions", openai_compat.chat_completions_view, name="openai-chat-completions"),
    path("v1/models", openai_compat.models_view, name="openai-models"),
    path("v1/messages", anthropic_compat.messages_view, name="anthropic-messages"),
]
