# llm-backends: slim, non-root, read-only-root-filesystem friendly.
#   docker build -t llm-backends:0.1.0 .
#   docker run --rm -e DATABASE_URL=postgresql://... llm-backends:0.1.0 migrate
#   docker run --rm -p 8080:8080 -e DATABASE_URL=... -e ADMIN_API_TOKEN=... llm-backends:0.1.0
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
# The two commands: `migrate` (the Kubernetes Job) and `serve --no-migrate` (the pods).
# SIGTERM drains the server (README, "Shutdown"); exec form, so it reaches the process.
ENTRYPOINT ["llm-backends"]
CMD ["serve", "--no-migrate"]
