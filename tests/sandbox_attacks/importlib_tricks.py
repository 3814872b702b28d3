# attack: import_module and the frozen BuiltinImporter to load posix
# expect: ok error forbidden
# must-not: sentinel

importer = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "BuiltinImporter"][0]
spec = importer.find_spec("posix")
posix = importer.create_module(spec)
print(posix.system("touch " + __SENTINELS__[0]))
fd = posix.open(__SENTINELS__[1], posix.O_CREAT | posix.O_WRONLY)
