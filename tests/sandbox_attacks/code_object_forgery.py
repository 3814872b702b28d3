# attack: run an import with a library module's globals to pass the import guard, then escape
# expect: ok error forbidden
# must-not: sentinel listener

import random

exec("import os, socket\nos.system('touch " + __SENTINELS__[0] + "')\nsocket.create_connection(('127.0.0.1', __TCP_PORT__))", vars(random))
