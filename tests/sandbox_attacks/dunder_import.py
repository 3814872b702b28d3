# attack: __import__ and builtins.__import__ of os, posix, sys
# expect: forbidden

for name in ("posix", "sys", "importlib"):
    try:
        __import__(name)
    except ImportError as exc:
        print(exc)
__builtins__.__import__("os")
