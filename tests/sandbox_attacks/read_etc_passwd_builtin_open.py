# attack: read /etc/passwd with the open builtin
# expect: forbidden
# absent: root:x:0:0

print(open('/etc/passwd').read())
