"""Hostile strings: each must show as text and run nothing, wherever lmwidgets shows text."""

HOSTILE = [
    "<script>window.__lmw_pwned = 1; alert(1)</script>",
    '<img src=x onerror="window.__lmw_pwned=1;alert(1)">',
    "<svg onload=window.__lmw_pwned=1>",
    '<a href="javascript:window.__lmw_pwned=1">click</a>',
    '<form action="https://example.invalid"><input type=submit></form>',
    "text </script><script>window.__lmw_pwned=1</script>",
    "[click](javascript:window.__lmw_pwned=1) **bold** <b>b</b>",
    "<iframe srcdoc='<script>parent.__lmw_pwned=1</script>'></iframe>",
    '"><style>body{display:none}</style>',
    "`` ``` ```` fence breakers",
    "\udcff lone surrogate and \ufffd replacement",
]
