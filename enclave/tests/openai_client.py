"""Talks to the enclave server with the official `openai` package (run by openai_python.rs).

Arguments: base URL, path of the server certificate (PEM; the only trust anchor), model id.
Completes one chat without and one with streaming, through a transport that records the
exact request and response bytes, and prints one JSON object: what the package parsed, and
the raw exchanges for the Rust side to verify the receipts.
"""

import base64
import json
import sys

import openai

try:  # openai >= 3 ships its HTTP stack as httpx2; older versions use httpx.
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class RecordingTransport(httpx.HTTPTransport):
    """Keeps the exact bytes of every exchange."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.exchanges = []

    def handle_request(self, request):
        request_body = request.read()
        response = super().handle_request(request)
        response_body = response.read()
        self.exchanges.append(
            {
                "path": request.url.path,
                "request_body": b64(request_body),
                "status": response.status_code,
                "headers": {key.lower(): value for key, value in response.headers.items()},
                "response_body": b64(response_body),
                "http_version": response.extensions.get("http_version", b"").decode(),
            }
        )
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response_body,
            extensions=response.extensions,
            request=request,
        )


def main() -> None:
    base_url, certificate, model = sys.argv[1:4]
    transport = RecordingTransport(verify=certificate)
    client = openai.OpenAI(
        base_url=base_url,
        api_key="not-used-by-the-enclave",
        http_client=openai.DefaultHttpxClient(transport=transport),
        max_retries=0,
        timeout=120,
    )
    messages = [{"role": "user", "content": "What is the capital of France?"}]

    completion = client.chat.completions.create(
        model=model, messages=messages, max_tokens=10, temperature=0, seed=1
    )
    chat = {
        "id": completion.id,
        "content": completion.choices[0].message.content,
        "finish_reason": completion.choices[0].finish_reason,
        "completion_tokens": completion.usage.completion_tokens,
    }

    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-attested-nonce": "0badc0ffee"},
    )
    content = []
    finish_reason = None
    completion_tokens = None
    for chunk in stream:
        if chunk.usage is not None:
            completion_tokens = chunk.usage.completion_tokens
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            finish_reason = choice.finish_reason or finish_reason
    streamed = {
        "content": "".join(content),
        "finish_reason": finish_reason,
        "completion_tokens": completion_tokens,
    }

    print(
        json.dumps(
            {
                "openai_version": openai.__version__,
                "chat": chat,
                "stream": streamed,
                "exchanges": transport.exchanges,
            }
        )
    )


if __name__ == "__main__":
    main()
