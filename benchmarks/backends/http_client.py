"""A small JSON-over-HTTP client for OpenAI-compatible endpoints, on the standard library.

It retries what is worth retrying (429, 5xx, refused or dropped connections, timeouts) with
exponential backoff, honours ``Retry-After``, bounds every request by a timeout and every answer
by a size limit, and can keep each request and response in a JSONL audit log. The API key is sent
in a header and never logged.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_RETRY_AFTER = 60.0  # seconds; a server asking for longer is waited on for this long at most


class EndpointRejected(Exception):
    """The endpoint answered with a status that retrying will not change (4xx other than 429)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class EndpointClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120.0, retries: int = 5,
                 backoff: float = 1.0, max_backoff: float = 30.0, log_path: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115 (closed in close)
        self._log_lock = threading.Lock()

    def close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = self.base_url + path
        last = ""
        for attempt in range(self.retries + 1):
            began = time.monotonic()
            try:
                status, payload, retry_after = self._once(method, url, body)
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, cut short, timed out
                reason = getattr(exc, "reason", exc)
                last = f"timed out after {self.timeout:g} s" if isinstance(reason, TimeoutError) \
                    else f"connection failed ({reason})"
                self._record(method, url, body, attempt, began, error=last)
                wait = self._delay(attempt, None)
            else:
                text = payload.decode("utf-8", errors="replace")
                self._record(method, url, body, attempt, began, status=status, response=text)
                if 200 <= status < 300:
                    try:
                        return json.loads(text)
                    except json.JSONDecodeError:
                        raise HessError(f"--endpoint: {url} answered {status} with a body that is not JSON") from None
                message = _error_message(text)
                if not _retryable(status):
                    raise EndpointRejected(status, message)
                last = f"HTTP {status}: {message}"
                wait = self._delay(attempt, retry_after)
            if attempt < self.retries:
                time.sleep(wait)
        raise HessError(f"--endpoint: {url}: {last} (gave up after {self.retries + 1} attempts)")

    def _once(self, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, bytes, float | None]:
        """(status, body, Retry-After seconds) of one attempt."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http/https only)
                return response.status, _read_limited(response, url), None
        except urllib.error.HTTPError as exc:
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            return exc.code, _read_limited(exc, url), retry_after

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return min(self.max_backoff, self.backoff * 2 ** attempt)

    def _record(self, method: str, url: str, body: Any, attempt: int, began: float, *, status: int | None = None,
                response: str | None = None, error: str | None = None) -> None:
        if self._log is None:
            return
        entry: dict[str, Any] = {
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "method": method, "url": url,
            "attempt": attempt + 1, "seconds": round(time.monotonic() - began, 4), "request": body,
            "status": status,
        }
        if error is not None:
            entry["error"] = error
        if response is not None:
            try:
                entry["response"] = json.loads(response)
            except json.JSONDecodeError:
                entry["response"] = response
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._log_lock:
            self._log.write(line)
            self._log.flush()


def _read_limited(response: Any, url: str) -> bytes:
    data = response.read(MAX_RESPONSE_BYTES + 1)
    if len(data) > MAX_RESPONSE_BYTES:
        raise HessError(f"--endpoint: {url} answered more than {MAX_RESPONSE_BYTES // 2**20} MB")
    return data


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _error_message(text: str) -> str:
    """The endpoint's own error message (OpenAI shape ``{"error": {"message": ...}}``), short."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:200] or "(empty body)"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:200]
    if isinstance(error, str):
        return error[:200]
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"][:200]
    return text.strip()[:200]
