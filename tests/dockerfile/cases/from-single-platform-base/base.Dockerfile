FROM scratch
ENV MADE_FOR=riscv64
