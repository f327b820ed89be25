"""Small network helpers: free loopback ports, SSRF ban lists, waiting for an HTTP health check."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import requests

_ALL_V4 = ipaddress.IPv4Network("0.0.0.0/0")
_ALL_V6 = ipaddress.IPv6Network("::/0")
_Net = TypeVar("_Net", ipaddress.IPv4Network, ipaddress.IPv6Network)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def banned_subnets(allowed: Iterable[str]) -> list[str]:
    """Every IPv4 and IPv6 range except the `allowed` networks, as CIDR strings.

    Label Studio's SSRF guard (`core.utils.io.validate_ip`) refuses any address inside one of
    `USER_ADDITIONAL_BANNED_SUBNETS`; with `USE_DEFAULT_BANNED_SUBNETS=false` this list is the only
    one, so banning the complement of the backend's subnet lets LS reach exactly that subnet.
    """
    allowed_nets = [ipaddress.ip_network(a, strict=False) for a in allowed]
    v4 = [net for net in allowed_nets if isinstance(net, ipaddress.IPv4Network)]
    v6 = [net for net in allowed_nets if isinstance(net, ipaddress.IPv6Network)]
    return [str(n) for n in sorted(_less(_ALL_V4, v4))] + [str(n) for n in sorted(_less(_ALL_V6, v6))]


def _less(universe: _Net, allowed: list[_Net]) -> list[_Net]:
    """The blocks of `universe` outside every `allowed` network (of the same IP version)."""
    remaining = [universe]
    for net in allowed:
        next_remaining: list[_Net] = []
        for block in remaining:
            if net.subnet_of(block):
                next_remaining.extend(block.address_exclude(net))
            elif block.subnet_of(net):
                continue  # fully allowed
            else:
                next_remaining.append(block)
        remaining = next_remaining
    return remaining


def subnet_of_host(host: str) -> str:
    """The network a backend host lives in: /8 for IPv4 loopback, ::1/128 for IPv6 loopback,
    the single address (/32 or /128) otherwise. Host names are resolved first."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = ipaddress.ip_address(socket.getaddrinfo(host, None)[0][4][0])
    if ip.version == 4 and ip.is_loopback:
        return "127.0.0.0/8"
    return f"{ip}/{ip.max_prefixlen}"


def wait_http_ok(
    url: str,
    timeout: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    check: Callable[[requests.Response], bool] = lambda r: r.status_code == 200,
    interval: float = 0.3,
    headers: dict[str, str] | None = None,
) -> bool:
    """Poll `url` until `check(response)` is true. Returns False on timeout or when `alive()`
    turns false (the process behind the URL died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            resp = requests.get(url, timeout=2, headers=headers)
            if check(resp):
                return True
        except requests.RequestException:
            pass
        time.sleep(interval)
    return False
