/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <string.h>

#include "packfs/digest.h"
#include "packfs/format.h"
#include "packfs/macro.h"

static const pf_format *const formats[] = {
        &pf_format_closure,
        &pf_format_tar,
        &pf_format_tar_gz,
        &pf_format_tar_xz,
        &pf_format_tar_zst,
        &pf_format_docker,
        &pf_format_docker_gz,
        &pf_format_docker_xz,
        &pf_format_docker_zst,
        &pf_format_oci,
        &pf_format_squashfs,
        &pf_format_deb,
        &pf_format_rpm,
        &pf_format_disk_raw,
        &pf_format_disk_qcow2,
        &pf_format_disk_iso,
};

bool pf_format_want_none(void *userdata, const uint8_t identity[32]) {
        return false;
}

bool pf_format_named(const pf_format *format) {
        for (const pf_format *f = format; f; f = f->base)
                if (f->named)
                        return true;
        return false;
}

void pf_view_name_id(const pf_view *v, const pf_format *format, uint8_t id[32]) {
        if (pf_format_named(format))
                pf_sha256_pair("packfs view name", 16, v->name, strlen(v->name), id);
        else
                memset(id, 0, 32);
}

const pf_format *const *pf_formats(size_t *ret_n) {
        *ret_n = ELEMENTSOF(formats);
        return formats;
}

const pf_format *pf_format_find(const char *file_name) {
        for (size_t i = 0; i < ELEMENTSOF(formats); i++)
                if (strcmp(formats[i]->file_name, file_name) == 0)
                        return formats[i];
        return NULL;
}
