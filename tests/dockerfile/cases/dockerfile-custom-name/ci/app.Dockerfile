FROM nodekit.test/busybox:1
COPY hello.txt /
