# attack: read /etc/passwd through the os module that random imports
# expect: error
# absent: root:x:0:0

import random

os = random._os
fd = os.open('/etc/passwd', os.O_RDONLY)
print(os.read(fd, 4096).decode())
