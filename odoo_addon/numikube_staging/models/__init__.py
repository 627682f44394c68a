from . import staging_environment
from . import staging_job
