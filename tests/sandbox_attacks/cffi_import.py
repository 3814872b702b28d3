# attack: import cffi and mmap for native access
# expect: forbidden

try:
    import mmap
except ImportError as exc:
    print(exc)
import cffi
