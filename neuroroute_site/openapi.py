"""Document the async gateway endpoints in the DRF-generated OpenAPI schema.

The hot-path views are plain async Django views validated by pydantic, so
drf-spectacular cannot see them; this hook adds their paths from the same
pydantic models that validate requests, so the schema cannot drift.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "code": {"type": "string"},
                "status": {"type": "integer"},
                "param": {"type": "string"},
            },
            "required": ["message"],
        }
    },
}


def _operations() -> list[dict[str, Any]]:
    from routing import anthropic_compat, api, openai_compat

    return [
        {
            "path": "/v1/chat/completions",
            "operation_id": "openai_chat_completions",
            "summary": "OpenAI-compatible chat completions (model: a key, an upstream name, or 'auto')",
            "request": openai_compat.ChatCompletionIn,
            "response": None,  # OpenAI's own chat.completion object
            "stream": True,
        },
        {
            "path": "/v1/messages",
            "operation_id": "anthropic_messages",
            "summary": "Anthropic-compatible messages (auth: x-api-key or Bearer with a NeuroRoute token)",
            "request": anthropic_compat.MessagesIn,
            "response": None,  # Anthropic's own message object
            "stream": True,
        },
        {
            "path": "/prompt",
            "operation_id": "prompt",
            "summary": "Route a prompt to the best model and answer it",
            "request": api.PromptIn,
            "response": api.PromptOut,
            "stream": True,
        },
        {
            "path": "/route",
            "operation_id": "route",
            "summary": "Dry run: the routing decision and its explanation, without calling a model",
            "request": api.PromptIn,
            "response": api.RouteDecisionOut,
        },
    ]


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def add_gateway_paths(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("GatewayError", ERROR_SCHEMA)
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}}}
    for op in _operations():
        response_schema = _schema_ref(op["response"], components) if op["response"] else {"type": "object"}
        ok_content = {"application/json": {"schema": response_schema}}
        if op.get("stream"):
            ok_content["text/event-stream"] = {"schema": {"type": "string", "description": "server-sent events"}}
        result.setdefault("paths", {})[op["path"]] = {
            "post": {
                "operationId": op["operation_id"],
                "summary": op["summary"],
                "tags": ["gateway"],
                "security": [{"clientToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _schema_ref(op["request"], components)}},
                },
                "responses": {
                    "200": {"description": "OK", "content": ok_content},
                    **{str(code): {"description": desc, **error} for code, desc in (
                        (400, "Invalid input"), (401, "Missing or invalid token"), (413, "Prompt too large"),
                        (422, "No model can serve the request"), (502, "Upstream failure"),
                        (503, "No provider available"), (504, "Upstream timed out"),
                    )},
                },
            }
        }
    return result
