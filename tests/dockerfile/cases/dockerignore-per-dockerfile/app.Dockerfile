FROM nodekit.test/busybox:1
COPY . /ctx/
