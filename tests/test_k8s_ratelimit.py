"""Client-side flow control toward the apiserver: the token bucket, the retrying client taking
a token per request it sends, and the ``tuner serve`` options that set it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from kubernetes.client import ApiException

from tuner.cli.parser import build_parser
from tuner.k8s.client import RetryingClient
from tuner.k8s.ratelimit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket, token_bucket


class Clock:
    """Injected time: waiting for a token moves the clock on by that much."""

    def __init__(self, advance: bool = True) -> None:
        self.now = 100.0
        self.advance = advance
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        if self.advance:
            self.now += seconds
        await asyncio.sleep(0)


def test_a_full_bucket_lets_a_burst_through_then_paces_at_qps() -> None:
    clock = Clock()
    bucket = TokenBucket(10, 3, clock=clock)
    assert [round(bucket.reserve(), 6) for _ in range(5)] == [0, 0, 0, 0.1, 0.2]
    clock.now += 10  # a quiet spell refills it, but to the burst only
    assert [round(bucket.reserve(), 6) for _ in range(4)] == [0, 0, 0, 0.1]


def test_waiting_callers_are_served_in_order_at_the_rate() -> None:
    clock = Clock(advance=False)  # all five ask at the same instant
    bucket = TokenBucket(4, 1, clock=clock, sleep=clock.sleep)

    async def many() -> None:
        await asyncio.gather(*(bucket.acquire() for _ in range(5)))

    asyncio.run(many())
    # each caller reserved its own token: 0.25 s apart, no two released at the same time
    assert clock.waits == [0.25, 0.5, 0.75, 1.0]
    assert bucket.waited == pytest.approx(2.5)


@pytest.mark.parametrize(("qps", "burst"), [(0, 5), (-1, 5), (5, 0)])
def test_a_bucket_needs_a_positive_rate_and_burst(qps: float, burst: int) -> None:
    with pytest.raises(ValueError, match="qps > 0 and burst >= 1"):
        TokenBucket(qps, burst)


def test_every_request_the_client_sends_takes_a_token_retries_too() -> None:
    clock = Clock()
    bucket = TokenBucket(2, 2, clock=clock, sleep=clock.sleep)
    client = RetryingClient(cast(Any, None), retries=3, rate=bucket)
    replies: list[object] = [ApiException(status=429, reason="Too Many Requests"), "a", "b"]

    def create_namespaced_job() -> object:
        reply = replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def three() -> list[object]:
        first = await client.call(create_namespaced_job)  # a 429, then its retry
        second = await client.call(create_namespaced_job)
        return [first, second]

    try:
        assert asyncio.run(three()) == ["a", "b"]
    finally:
        client.close()
    assert client.requests["create_namespaced_job"] == 3
    assert client.errors[("create_namespaced_job", "429")] == 1
    assert clock.waits == [0.5]  # 3 requests, burst 2: the third waited for its token


def test_serve_options_set_the_rate_and_refuse_bad_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    args = parser.parse_args(["serve", "--runner", "kubernetes"])
    assert (args.kube_api_qps, args.kube_api_burst) == (DEFAULT_QPS, DEFAULT_BURST)
    args = parser.parse_args(["serve", "--kube-api-qps", "2.5", "--kube-api-burst", "7"])
    bucket = token_bucket(args.kube_api_qps, args.kube_api_burst)
    assert bucket is not None and (bucket.qps, bucket.burst) == (2.5, 7)
    args = parser.parse_args(["serve", "--kube-api-qps", "0"])
    assert token_bucket(args.kube_api_qps, args.kube_api_burst) is None  # 0: no limit
    for bad, message in (
        (["--kube-api-qps", "-1"], "--kube-api-qps: must be a finite number, 0 or more, not -1"),
        (["--kube-api-qps", "fast"], "--kube-api-qps: not a number: 'fast'"),
        (["--kube-api-burst", "0"], "--kube-api-burst: must be 1 or more, not 0"),
    ):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["serve", *bad])
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
