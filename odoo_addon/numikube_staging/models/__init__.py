from . import staging_client
from . import staging_environment
from . import staging_database
from . import staging_backup
from . import staging_job
from . import staging_job_send
from . import staging_job_status
from . import staging_job_callback
