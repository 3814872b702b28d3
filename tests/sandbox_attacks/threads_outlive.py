# attack: start threads that keep running after the main program ends
# expect: error

Thread = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "Thread"][0]
def spin():
    while True:
        pass
for _ in range(4):
    Thread(target=spin, daemon=False).start()
print("started")
