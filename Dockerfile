FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY costguard ./costguard
COPY migrations ./migrations
COPY budgets ./budgets
COPY runbooks ./runbooks
RUN pip install --no-cache-dir -e .
USER nobody
EXPOSE 8000
CMD ["costguard", "serve"]
