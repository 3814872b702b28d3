# attack: import pickle and marshal directly
# expect: forbidden

import pickle

pickle.loads(b'cos\nsystem\n(S\'id\'\ntR.')
