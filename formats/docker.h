/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * What docker.tar's plan knows of its image, for the OCI layout (oci.c) over
 * the same layer bytes. Inside formats/ only.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "packfs/plan.h"

typedef struct docker_image_layer {
        uint64_t offset, length;        /* layer.tar's bytes in docker.tar */
        uint8_t digest[32];             /* their sha256: the diff_id */
} docker_image_layer;

typedef struct docker_image {
        docker_image_layer *layers;
        size_t n_layers;
        uint8_t *config;                /* the image config JSON */
        size_t config_size;
        uint8_t config_digest[32];
        char *repo_tag;                 /* "name:latest" */
} docker_image;

/* The image of PLAN, a (whole) plan of pf_format_docker: its layer digests
 * from the cache or computed now, by reading the layers once. */
int docker_image_of(const pf_plan *plan, docker_image *ret);
void docker_image_done(docker_image *image);

/* The repository name of VIEW's image (malloc'd; NULL without memory): lower
 * case, components of [a-z0-9] joined by one of "._-", separated by "/";
 * other characters become "-", and an empty name "packfs". */
char *docker_repository_name(const char *view);
