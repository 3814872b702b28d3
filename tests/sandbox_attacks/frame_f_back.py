# attack: climb frames (f_back) into the sandbox's own code and use its globals and descriptors
# expect: ok error forbidden
# must-not: sentinel listener
# stdout: frames climbed

try:
    1 / 0
except ZeroDivisionError as exc:
    frame = exc.__traceback__.tb_frame
seen = []
while frame is not None:
    seen.append(frame.f_code.co_name)
    g = frame.f_globals
    if "os" in g:
        os = g["os"]
        for fd in range(3, 64):
            try:
                os.write(fd, b'{"code": "escape"}')
                print("wrote to fd", fd)
            except OSError:
                pass
    frame = frame.f_back
print("frames climbed", seen)
os.open(__SENTINELS__[0], os.O_CREAT | os.O_WRONLY)
