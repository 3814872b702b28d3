# attack: map the file system from / and report what is there
# expect: ok
# absent: 'etc' 'home' 'proc' 'dev' 'tmp' 'sys'
# stdout: site-packages: ['mpmath', 'numpy', 'numpy.libs', 'sympy']

import random

os = random._os
print("top:", sorted(os.listdir("/")))
for entry in os.sys.path:
    if entry.endswith("site-packages") and os.path.isdir(entry):
        print("site-packages:", sorted(os.listdir(entry)))
for root, dirs, files in os.walk("/"):
    if root.count("/") > 3:
        dirs.clear()
    print(root, sorted(dirs)[:20], len(files))
