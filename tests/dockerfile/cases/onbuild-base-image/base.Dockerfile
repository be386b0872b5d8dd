FROM nodekit.test/busybox:1
ONBUILD RUN echo triggered > /triggered
ONBUILD COPY file.txt /onbuild-file
ONBUILD RUN <<EOF
echo "hello world" >> /heredoc
EOF
