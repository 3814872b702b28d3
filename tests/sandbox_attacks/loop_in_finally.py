# attack: loops that restart on every exception, in finally blocks
# expect: timeout
# timeout: 1

def forever():
    while True:
        try:
            while True:
                pass
        finally:
            forever()

forever()
