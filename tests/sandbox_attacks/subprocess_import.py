# attack: import subprocess
# expect: forbidden

import subprocess

subprocess.run(['id'])
