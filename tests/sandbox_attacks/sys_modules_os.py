# attack: reach sys.modules through a class's __init__.__globals__ and use os from there
# expect: forbidden error
# must-not: sentinel secret

wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0]
g = wrap.__init__.__globals__
os = g["sys"].modules["os"]
print(os.system("cat /etc/passwd"))
fd = os.open(__SENTINELS__[0], os.O_CREAT | os.O_WRONLY)
