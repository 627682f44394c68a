from . import staging_environment
from . import staging_database
from . import staging_backup
from . import staging_job
