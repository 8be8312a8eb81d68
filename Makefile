# The two commands a newcomer needs: `make run` and `make test`. Both install first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# python3-venv, gcc and python3-dev build the venv and PyAudio; the rest is listed in the README.
DEBS := python3-venv gcc python3-dev libspandsp2 espeak-ng sox asterisk-core-sounds-en-wav \
  fonts-wqy-zenhei chromium ffmpeg portaudio19-dev libportaudio2 pulseaudio pulseaudio-utils \
  libasound2-plugins
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test lint bench clean translations

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	@if ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(DEBS); \
	fi
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: install
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/appliance run

test: install
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/ruff check appliance drivers web tests
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/mypy
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/pytest -q

bench: install
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/appliance bench engine --channels 600 --seconds 20

# After changing a visible string in web/ (no locations and sorted output, so branches that add strings merge cleanly):
# in web/translations/zh_Hans_CN/LC_MESSAGES/messages.po, then run this again to compile.
translations: install
	$(VENV)/bin/pybabel extract -F web/babel.cfg -k N_ --no-location --sort-output --no-wrap -o $(VENV)/messages.pot web
	$(VENV)/bin/pybabel update -i $(VENV)/messages.pot -d web/translations -l zh_Hans_CN --no-fuzzy-matching --no-wrap --ignore-obsolete
	$(VENV)/bin/pybabel compile -d web/translations -l zh_Hans_CN

clean:
	rm -rf $(VENV) build *.egg-info
