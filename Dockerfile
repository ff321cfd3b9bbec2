# MLP Lab, self-hosted: docker build -t mlp-lab . && docker run -p 8501:8501 -v mlp-lab-data:/data mlp-lab
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MLP_LAB_DATA=/data MLP_LAB_HOSTED=1 STREAMLIT_CLIENT_SHOW_ERROR_DETAILS=none

RUN useradd --create-home --uid 1000 mlp && mkdir /data && chown mlp /data
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=mlp app.py ./
COPY --chown=mlp .streamlit .streamlit
COPY --chown=mlp engine engine
COPY --chown=mlp ui ui
COPY --chown=mlp pages pages
COPY --chown=mlp data data

USER mlp
# The workspaces' database and weights; keep it on a volume so runs survive a new container.
VOLUME /data
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status != 200)"
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
