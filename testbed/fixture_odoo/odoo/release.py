# testbed: the one line of Odoo's odoo/release.py the sidecar reads.
RELEASE_LEVELS = [ALPHA, BETA, RELEASE_CANDIDATE, FINAL] = ['alpha', 'beta', 'candidate', 'final']
version_info = (18, 0, 0, FINAL, 0, '')
