from . import sidecar
from . import staging_callback
from . import staging_run
from . import staging_routes
